"""The viewer's blueprints: the page, the streams, the JSON API, metrics and health."""
