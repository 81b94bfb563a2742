"""The command line's own plumbing, used by the command modules only.

`runner`: how a command runs (exit codes, one-line errors, interruptions, parsing);
`options`: argument types and the option groups several commands share.
No library module imports this package.
"""
