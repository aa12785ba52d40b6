"""Data coming in from outside: uploaded archives (with their guards) and legacy metadata sheets."""
