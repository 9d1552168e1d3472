# The address plan and every VM's settings, without any provider: this module only
# computes, so `terraform apply` runs it offline, and its outputs can be compared with
# what racklab plans for the same topology (lab/net/addressing.py, lab/backends/vm).

locals {
  # racklab's defaults for a VM node (lab/backends/vm/backend.py)
  default_memory = 536870912
  first_host     = 10 # nodes get .10, .11, ... in their rack (addressing.FIRST_HOST)
  cfs_period     = 100000

  supernet_bits = tonumber(split("/", var.supernet)[1])
  # rack i (0-based, file order) is the (i+1)-th /24: the first links the host to the
  # router in a racklab-made lab, and stays unused here so both kinds of lab agree
  rack_list = [
    for i, rack in var.racks : {
      name    = rack.name
      host    = rack.host
      index   = i + 1
      cidr    = cidrsubnet(var.supernet, 24 - local.supernet_bits, i + 1)
      gateway = cidrhost(cidrsubnet(var.supernet, 24 - local.supernet_bits, i + 1), 1)
      # host-side names: a libvirt network per rack, its bridge within 15 characters
      network = "${var.lab}-${rack.name}"
      bridge  = "rl${var.labid}t${i + 1}"
    }
  ]
  racks = { for r in local.rack_list : r.name => r }

  node_list = flatten([
    for i, rack in var.racks : [
      for j, node in rack.nodes : {
        name    = node.name
        rack    = rack.name
        host    = rack.host
        uri     = var.hosts[rack.host]
        domain  = "${var.lab}-${node.name}"
        address = cidrhost(local.rack_list[i].cidr, local.first_host + j)
        prefix  = 24
        gateway = local.rack_list[i].gateway
        # lab.backends.vm.mac_address: 52:54:00 and the first three bytes of
        # sha1("<labid>/<node>")
        mac = join(":", concat(["52", "54", "00"], regexall("..", substr(sha1("${var.labid}/${node.name}"), 0, 6))))
        # VMBackend.check: whole vCPUs (at least one), a fraction of a CPU as a CFS quota
        vcpus  = max(1, ceil(coalesce(node.cpus, 1)))
        memory = coalesce(node.memory, local.default_memory)
        # (HCL's && does not short-circuit: coalesce keeps a null cpus out of the
        # comparison; a node without cpus gets 1 < 1, no quota)
        cpu_quota = (coalesce(node.cpus, 1) < max(1, ceil(coalesce(node.cpus, 1)))
          ? floor(coalesce(node.cpus, 1) / max(1, ceil(coalesce(node.cpus, 1))) * local.cfs_period)
        : null)
      }
    ]
  ])
  nodes = { for n in local.node_list : n.name => n }

  # the same /etc/hosts racklab writes into its own VMs (lab.backends.vm.domain.hosts_file)
  hosts_file = join("\n", concat(
    ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"],
    [for n in local.node_list : "${n.address}\t${n.name}"],
  ))
}

# One NoCloud seed per VM: meta-data, user-data (#cloud-config) and network-config
# (version 2), as cloud-init reads them and as racklab's VM image reads them at boot
# (lab/images/nocloud.py).
locals {
  seeds = {
    for n in local.node_list : n.name => {
      meta_data = yamlencode({
        "instance-id"    = n.domain
        "local-hostname" = n.name
      })
      user_data = join("\n", ["#cloud-config", yamlencode({
        hostname            = n.name
        disable_root        = false
        ssh_pwauth          = false
        ssh_authorized_keys = [trimspace(var.ssh_authorized_key)]
        ssh_deletekeys      = true
        ssh_keys = {
          ed25519_private = var.host_keys[n.name].private
          ed25519_public  = trimspace(var.host_keys[n.name].public)
        }
        write_files = [{
          path        = "/etc/hosts"
          permissions = "0644"
          content     = "${local.hosts_file}\n"
        }]
      })])
      network_config = yamlencode({
        version = 2
        ethernets = {
          eth0 = {
            match       = { macaddress = n.mac }
            "set-name"  = "eth0"
            addresses   = ["${n.address}/${n.prefix}"]
            routes      = [{ to = "0.0.0.0/0", via = n.gateway }]
            nameservers = { addresses = [] }
          }
        }
      })
    }
  }
}
