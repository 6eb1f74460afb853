{#- LML's identity vocabularies (IdentitySource, IdentityMethod). The lists are also dbt vars
    (identity_sources, identity_methods) so that yml tests can use them. -#}

{#- Confidence band of each IdentityMethod. cross_source_agreement is "up to
    1.00"; LML emits at least 0.95, so anything lower is treated as out of band. -#}
{% macro identity_method_bands() -%}
    {{ return({
        'manual': [1.0, 1.0],
        'cross_source_agreement': [0.95, 1.0],
        'exact_match': [1.0, 1.0],
        'name_variation': [0.90, 0.99],
        'member_group': [0.80, 0.89],
        'alias_match': [0.75, 0.84],
        'trigram': [0.70, 1.0],
        'llm': [0.60, 0.79],
    }) }}
{%- endmacro %}

{#- SQL boolean: the confidence lies in its method's band (a tiny tolerance absorbs
    float noise such as 0.8999999, and a confidence stored as real). NULL method/confidence or an unknown method is
    false. -#}
{% macro confidence_in_method_band(method_sql, confidence_sql) -%}
    (case {{ method_sql }}
    {%- for method, band in identity_method_bands().items() %}
        when '{{ method }}' then {{ confidence_sql }} between {{ band[0] }} - 1e-6 and {{ band[1] }} + 1e-6
    {%- endfor %}
        else false
    end is true)
{%- endmacro %}

{#- SQL boolean: the method is one of the IdentityMethod values. -#}
{% macro is_known_identity_method(method_sql) -%}
    ({{ method_sql }} in ({% for m in var('identity_methods') %}'{{ m }}'{{ ", " if not loop.last }}{% endfor %}))
{%- endmacro %}

{#- SQL boolean: the source is one of the IdentitySource values. -#}
{% macro is_known_identity_source(source_sql) -%}
    ({{ source_sql }} in ({% for s in var('identity_sources') %}'{{ s }}'{{ ", " if not loop.last }}{% endfor %}))
{%- endmacro %}

{#- SQL boolean: an artist name that marks a V/A release (the station's name
    keywords: various, soundtrack, compilation, v/a, v.a.). -#}
{% macro is_va_artist_name(name_sql) -%}
    (lower(coalesce({{ name_sql }}, '')) ~ '(^|[^a-z])(various|soundtracks?|compilations?)([^a-z]|$)'
        or lower(btrim(coalesce({{ name_sql }}, ''))) ~ '^(v/a|v\.a\.?)([^a-z]|$)')
{%- endmacro %}
