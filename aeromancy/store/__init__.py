"""Artifact store: backends, content-addressed blobs, manifests, read cache."""
