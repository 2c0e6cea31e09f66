"""Visitor reports of missed (or needlessly masked) people and vehicles: the store, the public
service (``serve``), the original feed format, and applying accepted reports to the masks."""
