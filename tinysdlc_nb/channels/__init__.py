"""Chat channels that carry notifications to people and bring their messages to the team."""
