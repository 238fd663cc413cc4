"""The shop's business: catalog, orders, payments and what the bot says when."""
