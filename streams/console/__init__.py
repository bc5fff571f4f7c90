"""The risk-operations console: an aiohttp app over ClickHouse and the profile API (`loanwatch console`)."""
