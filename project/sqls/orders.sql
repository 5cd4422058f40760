SELECT order_id, customer_id, order_date, status, items, total
FROM orders
WHERE order_date BETWEEN '{{ params.from }}' AND '{{ params.to }}'
{{#params.status}}  AND status = '{{ params.status }}'{{/params.status}}
{{#params.min_total}}  AND total >= {{ params.min_total }}{{/params.min_total}}
ORDER BY order_date, order_id
