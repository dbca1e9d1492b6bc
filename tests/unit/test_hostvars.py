from provision import hostvars


def test_role_defaults_overlaid_with_the_inventory_per_host(two_rigs):
    (two_rigs.root / "inventory" / "host_vars" / "rig2.yml").write_text("docker_users: [bob]\n")
    resolved = hostvars.resolve(two_rigs)
    assert resolved["rig1"]["docker_users"] == [] and resolved["rig2"]["docker_users"] == ["bob"]
    assert resolved["rig1"]["rigforge_components"] == ["base"]  # the test workspace's group_vars
    assert hostvars.role_defaults(two_rigs)["base_min_free_disk_gb"] == 20
