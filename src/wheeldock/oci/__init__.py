"""OCI images as data and their destinations (go-containerregistry's ``pkg/v1`` shape).

``digest``, ``reference``, ``blobs``, ``layer``, ``image`` and ``mutate`` are the model; ``layout``,
``tarball``, ``daemon`` and ``remote`` are the destinations, one module each with the same
signature shape; ``publish`` picks one by a reference's transport. Nothing here knows of wheels,
Debian or compose.
"""
