import OvlCore
print("ovl-bench")
