"""The native, daemonless builder: a service's lock, wheels and code become an OCI image (one
layer per distribution), for one platform or several, with its SBOM; ``watch`` rebuilds on change."""
