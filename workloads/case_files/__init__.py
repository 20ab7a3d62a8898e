"""The claims system's case files in MongoDB: documents whose shape varies and evolves, extracted into bronze."""
