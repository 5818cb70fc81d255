"""facebehavior.losses"""
