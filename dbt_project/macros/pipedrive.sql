{#- A Pipedrive deal record (JSON text) that is not deleted: Pipedrive marks a deleted deal
    by status `deleted` (v1, v2 `status=deleted` lists) or by `is_deleted: true` with its
    last status kept; either leaves the deal out of the figures, as it left the CRM. -#}
{% macro pipedrive_deal_is_live(record) -%}
    (
        {{ json_text(record, 'status') }} <> 'deleted'
        and coalesce({{ json_text(record, 'is_deleted') }}, 'false') <> 'true'
    )
{%- endmacro %}
