"""Local stand-ins for artifacts the test machines cannot download, one module per artifact.

``apt_repo`` (with ``cuda_content`` and ``gpgkey``): STAND-IN for NVIDIA's CUDA apt repository
(not NVIDIA's packages). It builds small fake ``.deb`` packages under the real names, signs a
flat apt repository with a throwaway key and serves it over HTTP to sandbox hosts on the
bridge address.
"""
