"""The vnet grammar (vnet.lark) and the lark parser built from it."""
