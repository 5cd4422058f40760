"""The default project's MCP surface, driven by the official MCP Python SDK
(PyPI `mcp`) over Streamable HTTP. Run by tests/python/run.sh, which starts
the server; prints one line per check and exits non-zero on any failure.

Expected values are computed from project/data/*.csv, not hard-coded."""

import asyncio
import csv
import json
import pathlib
import sys
import traceback

from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client

DATA = pathlib.Path(__file__).resolve().parents[2] / "project" / "data"


def customers():
    with open(DATA / "customers.csv", newline="") as f:
        return list(csv.DictReader(f))


def orders():
    with open(DATA / "orders.csv", newline="") as f:
        return list(csv.DictReader(f))


def text_of(result):
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def check_initialize(session, init):
    assert init.server_info.name == "shop", init.server_info
    assert init.instructions and "find_customers" in init.instructions
    assert init.capabilities.tools is not None
    assert init.capabilities.resources is not None
    assert init.capabilities.prompts is not None


async def check_tools_list(session, _):
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == {
        "get_customer", "customer_orders", "find_customers", "find_orders", "monthly_revenue"
    }, sorted(tools)
    schema = tools["find_customers"].input_schema
    assert schema["additionalProperties"] is False
    assert schema["properties"]["segment"]["enum"] == ["consumer", "corporate", "small_business"]
    assert schema["properties"]["limit"]["maximum"] == 1000
    assert tools["get_customer"].input_schema["required"] == ["id"]
    assert tools["get_customer"].annotations.read_only_hint is True


async def check_get_customer(session, _):
    expected = next(c for c in customers() if c["customer_id"] == "42")
    result = await session.call_tool("get_customer", {"id": 42})
    assert not result.is_error, text_of(result)
    row = result.structured_content["rows"][0]
    assert row["customer_id"] == 42
    assert row["name"] == expected["name"]
    assert row["email"] == expected["email"]
    count = sum(1 for o in orders() if o["customer_id"] == "42")
    assert row["order_count"] == count, (row, count)
    assert json.loads(text_of(result)) == result.structured_content


async def check_find_customers(session, _):
    corporate_de = [
        c for c in customers() if c["segment"] == "corporate" and c["country"] == "DE"
    ]
    result = await session.call_tool(
        "find_customers", {"segment": "corporate", "country": "DE", "limit": 1000}
    )
    assert not result.is_error, text_of(result)
    body = result.structured_content
    assert body["total_count"] == len(corporate_de)
    assert sorted(r["customer_id"] for r in body["rows"]) == sorted(
        int(c["customer_id"]) for c in corporate_de
    )
    assert body["truncated"] is False
    page = await session.call_tool("find_customers", {"limit": 10, "offset": 990})
    assert page.structured_content["row_count"] == 10
    assert page.structured_content["truncated"] is False
    first = await session.call_tool("find_customers", {"limit": 10})
    assert first.structured_content["truncated"] is True


async def check_invalid_arguments(session, _):
    for arguments, needle in [
        ({"id": 0}, "`id` must be at least 1"),
        ({"id": "seven"}, "`id` must be an integer"),
        ({"id": 1, "extra": True}, "`extra` is not an argument"),
        ({}, "`id` is required"),
    ]:
        result = await session.call_tool("get_customer", arguments)
        assert result.is_error, (arguments, text_of(result))
        assert needle in text_of(result), (needle, text_of(result))


async def check_unknown_tool(session, _):
    try:
        await session.call_tool("no_such_tool", {})
    except Exception as error:  # the SDK raises McpError for JSON-RPC errors
        assert "no_such_tool" in str(error), error
    else:
        raise AssertionError("an unknown tool must be a JSON-RPC error")


async def check_resource(session, _):
    listed = (await session.list_resources()).resources
    assert [str(r.uri) for r in listed] == ["flapi://shop_schema"], listed
    read = await session.read_resource("flapi://shop_schema")
    rows = json.loads(read.contents[0].text)
    columns = {(r["table_name"], r["column_name"]) for r in rows}
    assert ("customers", "email") in columns and ("orders", "total") in columns, columns
    header = next(csv.reader(open(DATA / "orders.csv")))
    assert [r["column_name"] for r in rows if r["table_name"] == "orders"] == header


async def check_prompt(session, _):
    prompts = (await session.list_prompts()).prompts
    assert [p.name for p in prompts] == ["customer_review"]
    got = await session.get_prompt(
        "customer_review", {"customer_id": "42", "tone": "brief", "since": "2024-01-01"}
    )
    text = got.messages[0].content.text
    assert "Review customer 42" in text and "from 2024-01-01" in text and "brief tone" in text, text


async def check_completion(session, _):
    done = await session.complete(
        types.PromptReference(type="ref/prompt", name="customer_review"),
        {"name": "tone", "value": "d"},
    )
    assert done.completion.values == ["detailed"], done
    done = await session.complete(
        types.PromptReference(type="ref/prompt", name="find_orders"),
        {"name": "status", "value": ""},
    )
    assert done.completion.values == ["pending", "shipped", "delivered", "cancelled"], done


async def check_ping_and_logging(session, _):
    await session.send_ping()
    await session.set_logging_level("warning")


CHECKS = [
    check_initialize,
    check_tools_list,
    check_get_customer,
    check_find_customers,
    check_invalid_arguments,
    check_unknown_tool,
    check_resource,
    check_prompt,
    check_completion,
    check_ping_and_logging,
]


async def main(url):
    failed = 0
    async with streamable_http_client(url) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            for check in CHECKS:
                try:
                    await check(session, init)
                    print(f"python-mcp {check.__name__} ... ok")
                except Exception:
                    failed += 1
                    print(f"python-mcp {check.__name__} ... FAILED")
                    traceback.print_exc()
    print(f"python-mcp result: {len(CHECKS) - failed} passed; {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
