output "domains" {
  description = "node => the domain's name and UUID on this host."
  value = {
    for name, dom in libvirt_domain.node : name => { domain = dom.name, uuid = dom.uuid }
  }
}

output "networks" {
  description = "rack => the libvirt network and its bridge on this host."
  value = {
    for name, net in libvirt_network.rack : name => { network = net.name, bridge = net.bridge.name }
  }
}
