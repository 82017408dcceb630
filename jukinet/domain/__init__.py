"""Domain layer: identifier codes, the municipality directory, node ids and record validation.

Depends only on the standard library and the generated wire types in :mod:`jukinet.v1`.
"""
