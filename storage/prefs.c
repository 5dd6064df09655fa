/* Placeholder: per-user preference blobs (being written). */
