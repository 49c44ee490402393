"""The data-composition layer: readers, validation, sampling, mixing, filters, manifests."""
