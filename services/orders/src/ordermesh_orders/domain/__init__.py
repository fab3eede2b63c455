"""The order's rules: intake checks, state flags and automatic progress. Pure: values in, values out."""
