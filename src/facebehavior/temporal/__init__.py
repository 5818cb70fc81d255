"""facebehavior.temporal"""
