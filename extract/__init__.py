"""Getting data in: source types, landing folder, file formats, raw loading, HTTP, paging,
API merge and credentials.

Modules here import only each other and third-party libraries: never `night`, `dags` or
`devkit` (tests/test_layers.py keeps it so).
"""
