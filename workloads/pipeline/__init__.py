"""The batch pipeline: reference -> bronze, bronze -> silver (+ quarantine), silver -> gold."""
