"""producers: what runs inside the application: emission, routing, fallback, simulation."""
