"""facebehavior.nn"""
