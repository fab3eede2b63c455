"""The staff CLI of ordermesh."""
