SELECT table_name, column_name, data_type, is_nullable
FROM information_schema.columns
WHERE table_schema = 'main' AND table_name IN ('customers', 'orders')
ORDER BY table_name, ordinal_position
