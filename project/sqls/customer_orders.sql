SELECT order_id, order_date, status, items, total
FROM orders
WHERE customer_id = {{ params.id }}
{{#params.from}}  AND order_date >= '{{ params.from }}'{{/params.from}}
{{#params.to}}  AND order_date <= '{{ params.to }}'{{/params.to}}
ORDER BY order_date, order_id
