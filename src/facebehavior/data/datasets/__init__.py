"""facebehavior.data.datasets"""
