# One libvirt host's share of a racklab lab: a routed network per rack, racklab's VM
# image uploaded into the pool, and per VM node a copy-on-write disk over it, a
# NoCloud seed and a domain that boots the image's kernel directly, as racklab's own
# VM backend does (lab/backends/vm/domain.py: the same disks, MAC, memory and vCPUs).

# A rack: the host holds its gateway (.1) on the rack's bridge and routes between the
# racks it has. `route` rather than `nat`: the nodes keep their addresses end to end,
# so the machine running `lab` reaches them with a route to the supernet via this host.
resource "libvirt_network" "rack" {
  for_each = var.racks

  name      = each.value.network
  autostart = true
  bridge    = { name = each.value.bridge }
  forward   = { mode = "route" }
  # no DNS (nor DHCP): nodes find each other in /etc/hosts and take their address from
  # their seed, so libvirt starts no dnsmasq on the rack (and needs none installed)
  dns = { enable = "no" }
  ips = [{
    address = each.value.gateway
    prefix  = tonumber(split("/", each.value.cidr)[1])
  }]
}

# racklab's VM image: the kernel and initrd the domains boot directly (the disk holds
# no boot loader), the base root file system, and the small disk of racklab's code.
resource "libvirt_volume" "kernel" {
  name   = "${var.lab}-vmlinuz"
  pool   = var.pool
  target = { format = { type = "raw" } }
  create = { content = { url = var.image.kernel } }
}

resource "libvirt_volume" "initrd" {
  name   = "${var.lab}-initrd.img"
  pool   = var.pool
  target = { format = { type = "raw" } }
  create = { content = { url = var.image.initrd } }
}

resource "libvirt_volume" "base" {
  name   = "${var.lab}-base.qcow2"
  pool   = var.pool
  target = { format = { type = "qcow2" } }
  create = { content = { url = var.image.disk } }
}

resource "libvirt_volume" "racklab" {
  name   = "${var.lab}-racklab.img"
  pool   = var.pool
  target = { format = { type = "raw" } }
  create = { content = { url = var.image.racklab_disk } }
}

# Per node: its own writable layer over the base (what it writes stays its own)...
resource "libvirt_volume" "disk" {
  for_each = var.nodes

  name     = "${each.value.domain}.qcow2"
  pool     = var.pool
  capacity = var.image.disk_bytes
  target   = { format = { type = "qcow2" } }
  backing_store = {
    path   = libvirt_volume.base.path
    format = { type = "qcow2" }
  }
}

# ... its seed: host name, address, the lab's key and its own host key ...
resource "libvirt_cloudinit_disk" "seed" {
  for_each = var.nodes

  name           = "${each.value.domain}-seed"
  meta_data      = var.seeds[each.key].meta_data
  user_data      = var.seeds[each.key].user_data
  network_config = var.seeds[each.key].network_config
}

resource "libvirt_volume" "seed" {
  for_each = var.nodes

  name   = "${each.value.domain}-seed.iso"
  pool   = var.pool
  target = { format = { type = "raw" } }
  create = { content = { url = libvirt_cloudinit_disk.seed[each.key].path } }
}

# ... and the machine itself.
resource "libvirt_domain" "node" {
  for_each = var.nodes

  name        = each.value.domain
  type        = var.domain_type
  memory      = floor(each.value.memory / 1024)
  memory_unit = "KiB"
  vcpu        = each.value.vcpus
  # a fraction of a CPU (cpus: 0.5) is a CFS quota on the vCPUs, as racklab's own VMs
  cpu_tune = each.value.cpu_quota == null ? null : {
    period = 100000
    quota  = each.value.cpu_quota
  }
  running   = true
  autostart = false
  # racklab finds its nodes by this element; terraform="1" tells `lab clean` that the
  # domain is terraform's to remove
  metadata = {
    xml = "<racklab:node xmlns:racklab=\"https://racklab.dev/vm/1\" lab=\"${var.lab}\" node=\"${each.key}\" terraform=\"1\"/>"
  }

  os = {
    type         = "hvm"
    type_arch    = "x86_64"
    type_machine = "pc"
    kernel       = libvirt_volume.kernel.path
    initrd       = libvirt_volume.initrd.path
    cmdline      = var.cmdline
  }
  features    = { acpi = true, apic = {} }
  on_poweroff = "destroy"
  on_reboot   = "destroy"
  on_crash    = "destroy"

  devices = {
    disks = [
      {
        source = { volume = { pool = var.pool, volume = libvirt_volume.disk[each.key].name } }
        target = { dev = "vda", bus = "virtio" }
        driver = { name = "qemu", type = "qcow2", cache = "writeback", discard = "unmap" }
      },
      {
        source    = { volume = { pool = var.pool, volume = libvirt_volume.seed[each.key].name } }
        target    = { dev = "vdb", bus = "virtio" }
        driver    = { name = "qemu", type = "raw" }
        read_only = true
      },
      {
        source    = { volume = { pool = var.pool, volume = libvirt_volume.racklab.name } }
        target    = { dev = "vdc", bus = "virtio" }
        driver    = { name = "qemu", type = "raw" }
        read_only = true
      },
    ]
    interfaces = [{
      source = { network = { network = libvirt_network.rack[each.value.rack].name } }
      mac    = { address = each.value.mac }
      model  = { type = "virtio" }
    }]
    rngs        = [{ model = "virtio", backend = { random = "/dev/urandom" } }]
    mem_balloon = { model = "none" }
  }
}
