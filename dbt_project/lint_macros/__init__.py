"""Lint-only stand-ins for the dbt Jinja context, loaded by sqlfluff (`library_path`).

sqlfluff's plain Jinja templater knows `ref`, `source`, `var`, ... (apply_dbt_builtins)
but not `adapter`, `dbt` or `exceptions`, which the project's macros (dbt_project/macros)
and a few models call. These modules provide just enough of them for the real macros to
render SQL the linter can parse. dbt never reads this folder; nothing here runs in a build.
"""
