"""Kubernetes: racklab's services as manifests (k8s/ and `lab k8s render`)."""
