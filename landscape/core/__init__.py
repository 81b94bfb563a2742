"""What every part of the library uses: errors, safe files, devices, checkpoints.

`errors`: `InputError`, the one type of bad input; `files`: atomic writes, output
checks, provenance; `device`: the device resolver; `checkpoints`: the checked loader.
"""
