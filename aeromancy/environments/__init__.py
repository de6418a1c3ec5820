"""Environment images as store objects: saved once, loaded anywhere with the same id.

A tracked run's images are saved into the store as their config and layers, each a
content-addressed blob (``blobs/sha256/``), so a layer shared between images (the
base, the dependency layers) is stored once and a new image uploads only its new
layers. A machine that lacks an image reassembles ``docker load``'s archive from
those blobs, streamed, and gets the identical image id.

Modules: layout (the keys under ``images/``), record (the JSON of one stored image),
docker_io (``docker save`` and ``docker load`` as streams), archive (reading a saved
archive, writing a loadable one), progress, save, load, shelf (what the launcher
calls).
"""
