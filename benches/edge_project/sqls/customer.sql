SELECT c_custkey, c_name, c_address, c_nationkey, c_phone, c_acctbal, c_mktsegment FROM customers WHERE c_custkey = {{ params.id }}
