SELECT c_custkey, c_name, c_nationkey, c_acctbal, c_mktsegment
FROM customers
WHERE 1 = 1
{{#params.segment}} AND c_mktsegment = '{{ params.segment }}'{{/params.segment}}
{{#params.nation}} AND c_nationkey = {{ params.nation }}{{/params.nation}}
ORDER BY c_custkey
LIMIT 20
