"""Machine learning on curated tables: features, training, registry, scoring."""
