"""Generated code for the proto package ``rulebook.v1``: run ``make proto``, do not edit."""
