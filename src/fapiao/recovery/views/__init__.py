"""The recovery pages: the merchant's five steps, the shared case page, and the staff's desks."""
