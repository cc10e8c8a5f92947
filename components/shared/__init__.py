"""Building blocks every layer uses (IAM and IRSA, KMS, Kubernetes conventions, Helm pinning,
URN stability). Nothing here imports from a layer."""
