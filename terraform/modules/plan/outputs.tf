output "lab" {
  description = "The lab these racks belong to."
  value       = { name = var.lab, labid = var.labid, supernet = var.supernet }
}

output "hosts" {
  description = "libvirt host => URI."
  value       = var.hosts
}

output "racks" {
  description = "rack => its /24, gateway (the host's address on the rack network), host, libvirt network and bridge."
  value       = local.racks
}

output "nodes" {
  description = "node => address, rack, host, URI, domain name, MAC, vCPUs, memory (bytes), CFS quota."
  value       = local.nodes
}

output "seeds" {
  description = "node => its cloud-init NoCloud seed (meta_data, user_data, network_config)."
  value       = local.seeds
  sensitive   = true
}
