SELECT strftime(o.order_date, '%Y-%m') AS month,
       c.segment,
       count(*) AS orders,
       sum(o.total) AS revenue
FROM orders o
JOIN customers c ON c.customer_id = o.customer_id
WHERE o.status <> 'cancelled'
{{#params.year}}  AND year(o.order_date) = {{ params.year }}{{/params.year}}
{{#params.segment}}  AND c.segment = '{{ params.segment }}'{{/params.segment}}
GROUP BY ALL
ORDER BY month, c.segment
