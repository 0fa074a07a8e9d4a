"""The Pipetrace service: Flask app, routes, query layer and CLI."""
