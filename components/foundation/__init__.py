"""The foundation layer: network, EKS cluster, managed add-ons, node groups, storage, images."""
