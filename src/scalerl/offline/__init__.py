"""Offline RL: normaliser warm-up, reference scores, the offline training loop, dataset
export and collection, and offline-to-online initialisation (docs/offline.md)."""
