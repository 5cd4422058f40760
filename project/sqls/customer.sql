SELECT c.customer_id, c.name, c.email, c.segment, c.country, c.signup_date,
       c.credit_limit,
       count(o.order_id) AS order_count,
       coalesce(sum(o.total), 0) AS lifetime_value,
       {{ conn.currency }} AS currency
FROM customers c
LEFT JOIN orders o ON o.customer_id = c.customer_id
WHERE c.customer_id = {{ params.id }}
GROUP BY ALL
