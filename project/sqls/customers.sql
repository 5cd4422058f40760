SELECT customer_id, name, email, segment, country, signup_date, credit_limit
FROM customers
WHERE 1 = 1
{{#params.name}}
  AND name ILIKE '%{{{ params.name }}}%'
{{/params.name}}
{{#params.segment}}
  AND segment = '{{ params.segment }}'
{{/params.segment}}
{{#params.country}}
  AND country = '{{ params.country }}'
{{/params.country}}
ORDER BY {{ params.sort }}, customer_id
