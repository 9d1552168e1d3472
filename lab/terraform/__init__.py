"""racklab VM racks declared with terraform-provider-libvirt (the module is in
terraform/ at the top of the project): `lab terraform render` writes a root module for a
topology file, and a lab whose file says `terraform: DIR` is made of the VMs that
module made, read back with `terraform output -json` (outputs.py)."""
