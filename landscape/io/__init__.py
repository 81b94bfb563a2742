"""Files: the surface file (HDF5), the original loss-landscape code's files, exports.

`surface_file`: read, create, write and lock surface and directions files;
`legacy`: read and convert files of the original code; `export`: VTK and CSV.
"""
