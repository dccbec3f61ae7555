"""marshmallow schemas, one per resource; instantiated once at import by the route modules."""
